"""Drop-in replacements for the official packages' public APIs."""
