"""Reference solutions of the notebooks' exercises, one module per notebook.

A notebook imports them only when its ``solutions`` parameter is True (the lab's own tests run
every notebook both ways); a student writes their own in the notebook's skeleton cells.
"""
