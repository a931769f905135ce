"""RQ jobs and provider senders. Nothing in this package imports Flask."""
