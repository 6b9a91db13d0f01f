"""Input planning and the input formats: everything about the files before any pipeline runs."""
