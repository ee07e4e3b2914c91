"""Which process of a multi-process launch this is (issue #4: only rank 0 writes caches and the bundle).

`torchrun` and `accelerate launch` both set RANK for every process, and Accelerate derives its own
process index from the same launch, so this one variable answers the question for the publishing
transaction (publish.py) and the training loop (student/distil.py) alike, before torch is imported.
"""

from __future__ import annotations

import os


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0
