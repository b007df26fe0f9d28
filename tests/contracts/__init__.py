"""One contract suite per port: plain test functions over a fixture, imported by a unit module (the in-memory
fake) and by an integration module (the real adapter), so both are held to the same promises."""
