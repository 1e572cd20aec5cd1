"""Where rows come from, how they are scaled, and the rows the net reads."""
