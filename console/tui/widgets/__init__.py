"""Generic widgets: they render what they are given (SlotViews, rows, text) and know no source."""
