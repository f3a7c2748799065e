"""`xpnet serve RUN`: a local web page to draw a letter on and watch the network read it.

app.py holds what is served (the network loaded once, the run's figures, the page's files
from static/); handler.py answers HTTP with the standard library; command.py is the command line.
"""
