"""The tier of general science: code two or more papers use (metrics, models, loaders, training). Imports nothing."""
