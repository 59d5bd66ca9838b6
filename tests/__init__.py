"""The test suite, a package: so its folders (tests/infra, tests/simulator, ...) never stand in for the
top-level packages of the same names on sys.path (see pyproject.toml, [tool.pytest.ini_options])."""
