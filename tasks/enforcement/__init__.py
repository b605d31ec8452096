"""The enforcement ladder's I/O: reconciling ladders, the effects of a decided rung, enterprise exit and bars."""
