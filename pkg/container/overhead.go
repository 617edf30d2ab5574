package container

// Overhead returns the exact number of bytes a file spends on framing around
// its chunk payloads and model blobs: header, block framing, metadata, index
// and footer, for the given number of chunks, models and samples, the total
// length of the sample keys and the metadata length. Rate control uses it to
// turn a target size for the whole file into one for the codec's bytes.
func Overhead(chunks, models, samples, keyBytes, metadataLen int) int64 {
	index := int64(indexFixedSize) + int64(models)*modelEntrySize + int64(chunks)*chunkEntrySize +
		int64(samples)*sampleEntryFixedSize + int64(keyBytes)
	blocks := int64(chunks+models+2) * blockOverhead // chunks, models, metadata, index
	return headerSize + blocks + int64(metadataLen) + index + footerSize
}
