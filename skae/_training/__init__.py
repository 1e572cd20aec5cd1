"""Training: the skorch net, its callbacks, the objective, schedules and the loop."""
