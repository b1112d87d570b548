"""Video input and output with PyAV: colour-correct decoding to RGB float, encoding with the
input's colour tags, rotation and timing, and stream copy of audio and subtitles."""
