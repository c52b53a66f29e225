// Dumps the primary-level ("loose") collation weights of x/text's English
// collator as a compact table for Tessera's unicode_loose_md5 vindex.
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"sort"
	"unicode"

	"golang.org/x/text/collate"
	"golang.org/x/text/internal/colltab"
	"golang.org/x/text/language"
	"golang.org/x/text/unicode/norm"
)

func primaries(key []byte) []uint32 {
	var out []uint32
	for i := 0; i < len(key); {
		if key[i]&0x80 != 0 {
			out = append(out, uint32(key[i]&0x7f)<<16|uint32(key[i+1])<<8|uint32(key[i+2]))
			i += 3
		} else {
			out = append(out, uint32(key[i])<<8|uint32(key[i+1]))
			i += 2
		}
	}
	return out
}

func implicit(r rune) uint32 {
	if unicode.Is(unicode.Ideographic, r) {
		if (r >= 0x4E00 && r <= 0x9FFF) || (r >= 0xF900 && r <= 0xFAFF) {
			return uint32(r) + 0x10000
		}
		return uint32(r) + 0x20000
	}
	return uint32(r) + 0x50000
}

func uvarint(buf *bytes.Buffer, v uint64) {
	var tmp [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(tmp[:], v)
	buf.Write(tmp[:n])
}

func main() {
	col := collate.New(language.English, collate.Loose)
	var b collate.Buffer
	key := func(s string) []byte {
		b.Reset()
		return append([]byte{}, col.KeyFromString(&b, s)...)
	}
	for _, s := range []string{"Test", " Test", "Test\t", "TéstLooong", "Bést"} {
		fmt.Fprintf(os.Stderr, "%q -> %x\n", s, key(s))
	}
	t := col.DumpTable()
	var out bytes.Buffer
	out.WriteString("TVLK2")

	var singles []single
	for r := rune(0); r <= 0x10FFFF; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		es, n := t.AppendNextString(nil, string(r))
		if n != len(string(r)) {
			panic(fmt.Sprintf("rune %U consumed %d bytes", r, n))
		}
		if len(es) == 1 && es[0].Primary() == int(implicit(r)) && es[0].CCC() == 0 {
			continue
		}
		singles = append(singles, single{r, es})
	}
	uvarint(&out, uint64(len(singles)))
	prev := rune(0)
	for _, s := range singles {
		uvarint(&out, uint64(s.r-prev))
		prev = s.r
		writeElems(&out, s.elems)
	}
	cs := t.Contractions()
	sort.Strings(cs)
	uvarint(&out, uint64(len(cs)))
	maxRunes := 0
	for _, c := range cs {
		rs := []rune(c)
		if len(rs) > maxRunes {
			maxRunes = len(rs)
		}
		uvarint(&out, uint64(len(rs)))
		for _, r := range rs {
			uvarint(&out, uint64(r))
		}
		es, n := t.AppendNextString(nil, c)
		if n != len(c) {
			panic(fmt.Sprintf("contraction %q consumed %d bytes", c, n))
		}
		writeElems(&out, es)
	}
	// Lead/trail canonical combining classes, for discontiguous contraction matching.

	var cccs []cccEntry
	for r := rune(0); r <= 0x10FFFF; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		pr := norm.NFD.PropertiesString(string(r))
		if pr.LeadCCC() != 0 || pr.TrailCCC() != 0 {
			cccs = append(cccs, cccEntry{r, pr.LeadCCC(), pr.TrailCCC()})
		}
	}
	uvarint(&out, uint64(len(cccs)))
	prev = 0
	for _, c := range cccs {
		uvarint(&out, uint64(c.r-prev))
		prev = c.r
		out.WriteByte(c.lead)
		out.WriteByte(c.trail)
	}
	writeVectors(key, singles2runes(singles), cs, cccRunes(cccs))
	fmt.Fprintf(os.Stderr, "singles=%d contractions=%d maxRunes=%d bytes=%d\n", len(singles), len(cs), maxRunes, out.Len())
	os.Stdout.Write(out.Bytes())
	for _, rg := range unicode.Ideographic.R16 {
		fmt.Fprintf(os.Stderr, "ideo16 %04X..%04X stride %d\n", rg.Lo, rg.Hi, rg.Stride)
	}
	for _, rg := range unicode.Ideographic.R32 {
		fmt.Fprintf(os.Stderr, "ideo32 %04X..%04X stride %d\n", rg.Lo, rg.Hi, rg.Stride)
	}
}

type single struct {
	r     rune
	elems []colltab.Elem
}

// writeElems writes a rune's or contraction's collation elements as
// (primary, canonical combining class) pairs.
func writeElems(out *bytes.Buffer, es []colltab.Elem) {
	uvarint(out, uint64(len(es)))
	for _, e := range es {
		uvarint(out, uint64(e.Primary()))
		out.WriteByte(e.CCC())
	}
}

func (s single) R() rune { return s.r }

type cccEntry struct {
	r           rune
	lead, trail uint8
}

func (c cccEntry) R() rune { return c.r }
