"""The composition root: builds the desk, intake, relay, projector, alerts and watchdog from settings and runs them."""
