"""The connection: its typed config, extras validation, the Test, and the form fields."""
