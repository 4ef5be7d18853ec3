"""`baggan label`: a local web annotator for the one scan the one-shot method needs (docs/oneshot.md)."""
