"""The bottom layer every package may import: settings, logging, the rules settings configure, and the names
where the layers meet (Serve apps, actors). Imports nothing of the project but `domain`."""
