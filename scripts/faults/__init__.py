"""The fault-scenario suite (issue 9): scenarios, runner, scoring; entry point scripts/fault_suite.py."""
