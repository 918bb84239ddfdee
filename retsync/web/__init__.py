"""The web console: the place where the people who handle returns see and decide them."""
