"""The render stage: terminal, live status line and HTML. Renderers compute nothing."""
