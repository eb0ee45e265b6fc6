"""The example user project is a pytest project of its own: this suite runs it in a child pytest, never
collects it."""

collect_ignore = ["example_project"]
