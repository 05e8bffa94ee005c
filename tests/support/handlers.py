"""Load a Lambda handler module (functions/<name>/app.py) the way Lambda does, under a unique module name."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.support.paths import FUNCTIONS


def load_handler_module(function_name: str) -> ModuleType:
    """Import ``functions/<function_name>/app.py`` afresh, so module-level clients pick up the current env."""
    module_name = f"_handler_{function_name}"
    spec = importlib.util.spec_from_file_location(module_name, FUNCTIONS / function_name / "app.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"no handler at functions/{function_name}/app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
