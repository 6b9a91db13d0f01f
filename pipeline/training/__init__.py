"""The training side: the verified loader of the shards, the model checker and the non-finite loss guard."""
