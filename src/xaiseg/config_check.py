"""The whole configuration checked in one pass: every complaint of the schema, then
every one of the settings (unknown keys, references across sections), each named by
its key, so that a config with four problems takes one run to mend, not four.

Needs jsonschema and PyYAML only (both come with Snakemake): the Snakefile runs it
before its first job."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xaiseg.settings import ConfigError, WorkflowSettings, workflow_settings


def schema_problems(
    config: Mapping[str, Any], schema_path: str | Path
) -> list[tuple[str, str, str]]:
    """Every place where ``config`` breaks the schema: (key path, keyword, message)."""
    import jsonschema
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(dict(config)), key=lambda e: list(map(str, e.path))):
        key = ".".join(str(p) for p in error.path) or "config"
        problems.append((key, str(error.validator), _short(error)))
    return problems


def _short(error) -> str:
    """The schema's message without a dump of the schema (oneOf: its options' words)."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        reasons = sorted({e.message for e in error.context})
        return f"{error.instance!r} fits none of the choices: " + "; or ".join(reasons)
    return error.message


def checked_settings(config: Mapping[str, Any], schema_path: str | Path) -> WorkflowSettings:
    """The workflow's settings, or a ConfigError listing every problem found."""
    found = schema_problems(config, schema_path)
    problems = [f"{key}: {text}" for key, _, text in found]
    try:
        settings = workflow_settings(config)
    except ConfigError as err:
        # An unknown key is named by the settings too, beside the known ones: once.
        named = {p.split(":")[0] for p in err.problems if "unknown key" in p}
        problems = [
            f"{key}: {text}"
            for key, keyword, text in found
            if not (keyword == "additionalProperties" and key in named)
        ]
        problems += err.problems
    except (TypeError, ValueError, KeyError, AttributeError):
        # A value of the wrong type that the schema has named already.
        if not problems:
            raise
    if problems:
        raise ConfigError(problems)
    return settings
