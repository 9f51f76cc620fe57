"""Results and what is rendered from them alone: terminal table, result.json, Gradescope,
JUnit, CSV gradebooks, Markdown/HTML feedback."""
