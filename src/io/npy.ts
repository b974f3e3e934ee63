/**
 * NumPy `.npy` files, read and written in row chunks so that a 10 GB embedding matrix never sits in
 * memory. Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 * (magic `\x93NUMPY`, version byte pair, header length (u16 for 1.0, u32 for 2.0/3.0), a Python
 * dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (N, D), }` padded with spaces and
 * a newline so that the data starts at a multiple of 64 bytes).
 *
 * Rows are the first axis; a 1-D array has one column per row; a >2-D array is flattened to
 * `shape[0] × prod(shape[1:])`.
 */
export { NPY_DTYPES, buildNpyHeader, npyHeaderLength, parseNpyHeaderBytes, readNpyHeader, type NpyDtype, type NpyHeader } from './npy/header.js';
export { npyElementsToFloat32 } from './npy/float16.js';
export { Float32ArrayPool, readNpyFloat32, readNpyRows, type NpyRowBatch, type ReadNpyRowsOptions } from './npy/read.js';
export { NpyWriter, writeNpy, type NpyWritable } from './npy/write.js';
