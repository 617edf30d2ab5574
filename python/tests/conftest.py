"""Makes python/ntcb importable when pytest runs from the repository root."""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the tree (scripts/ is imported too)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
