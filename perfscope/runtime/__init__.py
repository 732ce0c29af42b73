"""What runs inside the user's process: the step clock and the torch hooks."""
