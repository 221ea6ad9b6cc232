"""Company setup (企业设立多证联办, 1+4+X): the window accepts once, the core and the X
departments review in parallel on the review engine, the window issues everything together."""
