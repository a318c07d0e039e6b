"""What a resumable checkpoint belongs to: settings, every input file, and the code."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from xaiseg.codehash import code_hash
from xaiseg.provenance import hash_inputs


def fingerprint(settings: Any, stage_module: str, *inputs: Path) -> str:
    """Settings, each input file (folders: every file, shards included) and the code
    the stage imports (the same hash the workflow's ``params.code`` uses)."""
    digest = hashlib.sha256(json.dumps(asdict(settings), sort_keys=True).encode())
    digest.update(code_hash(stage_module).encode())
    for name, sha in sorted(hash_inputs(list(inputs)).items()):
        digest.update(f"{Path(name).name}:{sha}".encode())
    return digest.hexdigest()
