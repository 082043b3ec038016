"""The sections of the deployment settings; load them through :mod:`app.settings`."""
