"""GPU polling: the scheduler job, the `gpus` command and what they share."""
