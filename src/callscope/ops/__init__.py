"""Running an installation: backup, restore and the checks of a setup."""
