// Package ntcb reads and writes token datasets as .ntcb files: it joins the
// token I/O of pkg/tensorio, the codecs of pkg/codec and the container of
// pkg/container.
//
// Writing streams: samples are read one chunk at a time, encoded by a pool
// of workers and written in order, so memory stays bounded by a few chunks
// whatever the size of the dataset. Reading opens only the header and the
// footer index; ReadSample decodes the one chunk that holds the sample.
package ntcb
