package container

// Framing counts what a file holds besides its chunk payloads and model
// blobs, for Overhead.
type Framing struct {
	// Chunks, Models and Samples count the chunks, the models stored in
	// the file and the samples.
	Chunks, Models, Samples int
	// ModelRefs counts the models recorded by hash only (WriteModelRef).
	ModelRefs int
	// KeyBytes is the total length of the sample keys.
	KeyBytes int
	// MetadataLen is the metadata length.
	MetadataLen int
}

// Overhead returns the exact number of bytes a file of the newest format
// version spends on framing around its chunk payloads and stored model
// blobs: header, block framing, metadata, index and footer. Rate control
// uses it to turn a target size for the whole file into one for the codec's
// bytes.
func (f Framing) Overhead() int64 {
	index := int64(indexFixedSize) + int64(f.Models+f.ModelRefs)*modelEntrySizeV2 +
		int64(f.Chunks)*chunkEntrySizeV2 + int64(f.Samples)*sampleEntryFixedSizeV2 + int64(f.KeyBytes)
	blocks := int64(f.Chunks+f.Models+2) * blockOverhead // chunks, stored models, metadata, index
	return headerSize + blocks + int64(f.MetadataLen) + index + footerSize
}

// Overhead returns Framing{chunks, models, samples, 0, keyBytes,
// metadataLen}.Overhead(): the framing of a file whose models are all
// stored in it.
func Overhead(chunks, models, samples, keyBytes, metadataLen int) int64 {
	return Framing{Chunks: chunks, Models: models, Samples: samples, KeyBytes: keyBytes, MetadataLen: metadataLen}.Overhead()
}
