"""`nanguard suite init`: profile the input with one Beam pass and draft a suite from the profile."""
from __future__ import annotations

import json
import os
import shutil
import tempfile

from expectations.draft import draft_suite
from pipeline.errors import ConfigError
from pipeline.files import exists, join, read_json, write_text
from pipeline.inputs.plan import check_columns, plan_inputs
from pipeline.stages.local_runner import new_pipeline, pipeline_options
from pipeline.stages.profile import Profile
from pipeline.stages.read import ReadBatches
from transforms.labels import LabelSpec


def init_suite(inputs: tuple[str, ...], output: str, fmt: str | None = None, labels: tuple[LabelSpec, ...] = (),
               margin: float = 0.1, overwrite: bool = False, beam_args: tuple[str, ...] = ()) -> dict:
    """Writes the drafted suite to `output` (a JSON file) and returns it."""
    if exists(output) and not overwrite:
        raise ConfigError(f"--output {output}: exists; pass --overwrite to replace it")
    if margin < 0:
        raise ConfigError(f"--margin {margin}: must be >= 0 (the share of the observed range added on each side)")
    plan = plan_inputs(inputs, fmt, tuple(lab.column for lab in labels if lab.is_vector))
    check_columns(plan, labels)
    work = tempfile.mkdtemp(prefix="nanguard-suite-init-")
    try:
        path = join(work, "profile.json")
        with new_pipeline(pipeline_options(beam_args)) as p:
            _ = (p | "Read" >> ReadBatches(plan=plan)
                 | "Profile" >> Profile(columns=tuple(plan.kinds), with_sketch=False, save_to=path))
        profile = read_json(path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    columns = {name: plan.type_name(name) for name in plan.kinds}
    name = os.path.splitext(os.path.basename(output))[0] or "drafted_suite"
    suite = draft_suite(name, profile, columns, dict(plan.kinds), labels, margin)
    write_text(output, json.dumps(suite, indent=2) + "\n")
    return suite
