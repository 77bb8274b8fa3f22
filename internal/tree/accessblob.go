package tree

// WithAccessBlob returns n with blob as its own access blob, keeping its
// family. It applies Tiled's trees[].args.top_level_access_blob to a
// mounted tree; the nodes below, having none of their own, inherit it.
func WithAccessBlob(n Node, blob map[string]any) Node {
	switch v := n.(type) {
	case Container:
		return blobContainer{v, blob}
	case Array:
		return blobArray{v, blob}
	case Table:
		return blobTable{v, blob}
	}
	return n
}

type blobContainer struct {
	Container
	blob map[string]any
}

func (b blobContainer) AccessBlob() map[string]any { return b.blob }

type blobArray struct {
	Array
	blob map[string]any
}

func (b blobArray) AccessBlob() map[string]any { return b.blob }

type blobTable struct {
	Table
	blob map[string]any
}

func (b blobTable) AccessBlob() map[string]any { return b.blob }
