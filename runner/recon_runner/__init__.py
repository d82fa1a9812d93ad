"""The reconstruction runner: a multi-view RGB-D capture in, a textured mesh out."""
