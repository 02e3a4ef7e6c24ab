"""Import every shipped engine module so its hardware kind and engine register themselves.

A new engine module adds one line here.
"""
from . import systolic  # noqa: F401
from . import fpga  # noqa: F401
from . import gather_scatter  # noqa: F401
from . import crossbar  # noqa: F401
from . import smartexchange  # noqa: F401
