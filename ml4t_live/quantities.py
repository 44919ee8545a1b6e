"""The absolute tolerance the runtime compares float quantities with (shares filled, held or
left, and the amounts computed from them): two within ``EPS`` are equal, one within ``EPS`` of
zero is nothing."""

from __future__ import annotations

#: absolute tolerance of a float comparison of quantities
EPS = 1e-9
