"""jobconsole: the Textual operations console for jobcore."""
