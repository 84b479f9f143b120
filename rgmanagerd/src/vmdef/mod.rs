//! VM definitions: xm-style files and a plain QEMU format.
