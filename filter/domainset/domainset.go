package domainset

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"slices"
	"strings"
)

// MaxDomainLen is the longest domain, in bytes, that Add accepts.
const MaxDomainLen = 253

// rec is one Add call: the domain is blob[off:off+ln]. ln == 0 marks a
// record merged into an earlier record of the same domain.
type rec struct {
	off uint32
	ln  uint8
	cat uint16
	src uint16
}

// Builder collects (domain, category, source) triples for a Set. A Builder
// is not safe for concurrent use and must not be used after Build.
type Builder struct {
	seed maphash.Seed
	blob []byte
	recs []rec
}

// NewBuilder returns a Builder with room for about sizeHint Add calls.
func NewBuilder(sizeHint int) *Builder {
	if sizeHint < 0 {
		sizeHint = 0
	}
	return &Builder{
		seed: maphash.MakeSeed(),
		blob: make([]byte, 0, sizeHint*24),
		recs: make([]rec, 0, sizeHint),
	}
}

// Add records that domain belongs to category, from source. The domain must
// already be canonical: lowercase ASCII, no leading or trailing dot. Add
// returns false, and records nothing, if domain is empty or longer than
// MaxDomainLen bytes.
func (b *Builder) Add(domain string, category, source uint16) bool {
	if len(domain) == 0 || len(domain) > MaxDomainLen {
		return false
	}
	if uint64(len(b.blob))+uint64(len(domain)) > 1<<32-1 {
		panic("domainset: builder blob exceeds 4 GiB")
	}
	off := uint32(len(b.blob))
	b.blob = append(b.blob, domain...)
	b.recs = append(b.recs, rec{off: off, ln: uint8(len(domain)), cat: category, src: source})
	return true
}

// Set is an immutable set of domain entries. It is safe for concurrent use.
// A nil *Set is an empty set.
//
// Layout: blob holds one record per distinct domain:
//
//	[len u8][source u16][set u16 or u32][domain bytes]
//
// and table is an open-addressing (linear probing) hash table whose non-zero
// slots hold a record's offset in blob in the low offBits bits and a tag of
// the domain's hash in the remaining high bits. blob[0] is padding, so no
// record is at offset 0 and 0 marks an empty slot.
type Set struct {
	seed     maphash.Seed
	blob     []byte
	table    []uint32
	mask     uint64
	offBits  uint
	offMask  uint32
	tagShift uint // 64 - tag bits; a shift of 64 yields a tag of 0
	set4     bool // set IDs take 4 bytes (more than 65536 sets)
	hdr      int  // record header size: 3 + 2 or 4
	n        int
	setData  []uint16
	setOff   []uint32 // len(sets)+1 bounds into setData
}

// Match is one entry that matches a host.
type Match struct {
	// Entry is the matched entry: a suffix of the host passed in (a
	// substring of it, not a copy).
	Entry string
	// Set identifies the entry's category set; see Set.Categories.
	Set uint32
	// Source is the source of the first Add call for the entry.
	Source uint16
}

// Len returns the number of distinct domains in s.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// Bytes returns the approximate number of heap bytes held by s.
func (s *Set) Bytes() int {
	if s == nil {
		return 0
	}
	return cap(s.blob) + 4*cap(s.table) + 2*cap(s.setData) + 4*cap(s.setOff)
}

// Categories returns the sorted category IDs of set, or nil if set is not a
// set ID of s. The slice is shared and must not be modified.
func (s *Set) Categories(set uint32) []uint16 {
	if s == nil || uint64(set)+1 >= uint64(len(s.setOff)) {
		return nil
	}
	lo, hi := s.setOff[set], s.setOff[set+1]
	return s.setData[lo:hi:hi]
}

// chunk is how many suffixes of a host are probed together, so that their
// cache misses overlap.
const chunk = 8

// cand is one suffix of a host being looked up.
type cand struct {
	d string // the suffix
	h uint64 // its hash
	e uint32 // the table slot at its home position
	l byte   // if e's tag matches: the length byte of e's record
}

// gather fills c with the suffixes of host that start at label boundaries
// at or after i, at most chunk of them, skipping those longer than
// MaxDomainLen. It returns how many it found and where to go on (-1 when
// host is exhausted). It then hashes them, loads their home slots and reads
// the length byte of the records their tags point at, each phase in a tight
// loop so that the cache misses overlap.
func (s *Set) gather(host string, i int, c *[chunk]cand) (int, int) {
	n := 0
	for n < chunk {
		d := host[i:]
		if len(d) <= MaxDomainLen {
			c[n].d = d
			n++
		}
		j := strings.IndexByte(d, '.')
		if j < 0 || j+1 == len(d) {
			i = -1
			break
		}
		i += j + 1
	}
	for k := range n {
		c[k].h = maphash.String(s.seed, c[k].d)
	}
	for k := range n {
		c[k].e = s.table[c[k].h&s.mask]
	}
	for k := range n {
		if e := c[k].e; e != 0 && e>>s.offBits == uint32(c[k].h>>s.tagShift) {
			c[k].l = s.blob[e&s.offMask]
		}
	}
	return n, i
}

// resolve finds the record of c.d, starting from what gather loaded.
func (s *Set) resolve(c *cand) (uint32, bool) {
	e, d := c.e, c.d
	if e == 0 {
		return 0, false
	}
	tag := uint32(c.h >> s.tagShift)
	hdr := s.hdr
	if e>>s.offBits == tag && int(c.l) == len(d) {
		off := int(e & s.offMask)
		if string(s.blob[off+hdr:off+hdr+len(d)]) == d {
			return uint32(off), true
		}
	}
	for i := c.h & s.mask; ; {
		i = (i + 1) & s.mask
		e = s.table[i]
		if e == 0 {
			return 0, false
		}
		if e>>s.offBits == tag {
			off := int(e & s.offMask)
			r := s.blob[off:]
			if int(r[0]) == len(d) && string(r[hdr:hdr+len(d)]) == d {
				return uint32(off), true
			}
		}
	}
}

// match builds the Match for the record at off, matched by entry.
func (s *Set) match(entry string, off uint32) Match {
	r := s.blob[off : off+uint32(s.hdr)]
	m := Match{Entry: entry, Source: binary.LittleEndian.Uint16(r[1:3])}
	if s.set4 {
		m.Set = binary.LittleEndian.Uint32(r[3:7])
	} else {
		m.Set = uint32(binary.LittleEndian.Uint16(r[3:5]))
	}
	return m
}

// Longest returns the most specific (longest) entry that matches host: host
// itself or its longest suffix that starts after a '.'.
func (s *Set) Longest(host string) (Match, bool) {
	if s == nil || s.n == 0 || len(host) == 0 {
		return Match{}, false
	}
	var c [chunk]cand
	for i := 0; i >= 0; {
		var n int
		n, i = s.gather(host, i, &c)
		for k := range n {
			if off, ok := s.resolve(&c[k]); ok {
				return s.match(c[k].d, off), true
			}
		}
	}
	return Match{}, false
}

// Each calls fn for every entry that matches host, longest first, until fn
// returns false.
func (s *Set) Each(host string, fn func(Match) bool) {
	if s == nil || s.n == 0 || len(host) == 0 {
		return
	}
	var c [chunk]cand
	for i := 0; i >= 0; {
		var n int
		n, i = s.gather(host, i, &c)
		for k := range n {
			if off, ok := s.resolve(&c[k]); ok {
				if !fn(s.match(c[k].d, off)) {
					return
				}
			}
		}
	}
}

// tableSize returns the power-of-two table size for n entries, keeping the
// load factor at most 0.75.
func tableSize(n int) int {
	want := uint64(n) + uint64(n)/3 + 1
	if want < 8 {
		want = 8
	}
	return 1 << bits.Len64(want-1)
}

// setInterner assigns IDs to distinct sorted category sets.
type setInterner struct {
	ids     map[string]uint32
	single  []uint32 // category -> singleton set ID + 1
	union   map[uint64]uint32
	data    []uint16
	off     []uint32
	scratch []uint16
	key     []byte
}

func newSetInterner() *setInterner {
	return &setInterner{
		ids:    make(map[string]uint32),
		single: make([]uint32, 1<<16),
		union:  make(map[uint64]uint32),
		off:    []uint32{0},
	}
}

func (t *setInterner) get(id uint32) []uint16 {
	return t.data[t.off[id]:t.off[id+1]]
}

func (t *setInterner) intern(cats []uint16) uint32 {
	t.key = t.key[:0]
	for _, c := range cats {
		t.key = binary.LittleEndian.AppendUint16(t.key, c)
	}
	if id, ok := t.ids[string(t.key)]; ok {
		return id
	}
	id := uint32(len(t.off) - 1)
	t.ids[string(t.key)] = id
	t.data = append(t.data, cats...)
	t.off = append(t.off, uint32(len(t.data)))
	return id
}

func (t *setInterner) singleton(c uint16) uint32 {
	if v := t.single[c]; v != 0 {
		return v - 1
	}
	id := t.intern([]uint16{c})
	t.single[c] = id + 1
	return id
}

// add returns the ID of set id plus category c.
func (t *setInterner) add(id uint32, c uint16) uint32 {
	k := uint64(id)<<16 | uint64(c)
	if v, ok := t.union[k]; ok {
		return v
	}
	cur := t.get(id)
	i, found := slices.BinarySearch(cur, c)
	v := id
	if !found {
		t.scratch = append(t.scratch[:0], cur[:i]...)
		t.scratch = append(t.scratch, c)
		t.scratch = append(t.scratch, cur[i:]...)
		v = t.intern(t.scratch)
	}
	t.union[k] = v
	return v
}

// Build returns the Set of everything added. Records of the same domain
// merge: the entry gets the union of their categories and the source of the
// first. The Builder must not be used afterwards. Build panics if the set
// would exceed 4 GiB.
func (b *Builder) Build() *Set {
	seed, blob, recs := b.seed, b.blob, b.recs
	b.blob, b.recs = nil, nil
	sets := newSetInterner()
	s := &Set{seed: seed}

	// Pass 1: deduplicate through a build-time table whose slots hold a
	// 32-bit hash tag and the index+1 of the first record of a domain.
	bt := make([]uint64, tableSize(len(recs)))
	mask := uint64(len(bt) - 1)
	merged := make(map[uint32]uint32) // first record -> set ID, once merged
	uniq := 0
	total := uint64(1) // final blob size, with the padding byte
	for r := range recs {
		rr := &recs[r]
		d := blob[rr.off : rr.off+uint32(rr.ln)]
		h := maphash.Bytes(seed, d)
		tag := h >> 32
		for i := h & mask; ; i = (i + 1) & mask {
			e := bt[i]
			if e == 0 {
				bt[i] = tag<<32 | uint64(r+1)
				uniq++
				sets.singleton(rr.cat)
				break
			}
			if e>>32 != tag {
				continue
			}
			f := uint32(e) - 1
			fr := &recs[f]
			if fr.ln != rr.ln || string(blob[fr.off:fr.off+uint32(fr.ln)]) != string(d) {
				continue
			}
			id, ok := merged[f]
			if !ok {
				id = sets.singleton(fr.cat)
			}
			if nid := sets.add(id, rr.cat); nid != id {
				merged[f] = nid
			}
			rr.ln = 0
			break
		}
	}
	bt = nil

	s.set4 = len(sets.off)-1 > 1<<16
	s.hdr = 5
	if s.set4 {
		s.hdr = 7
	}
	for r := range recs {
		if ln := recs[r].ln; ln != 0 {
			total += uint64(s.hdr) + uint64(ln)
		}
	}
	if total > 1<<32 {
		panic("domainset: set exceeds 4 GiB")
	}

	// Pass 2: write the records and the final table.
	s.n = uniq
	s.offBits = uint(bits.Len64(total - 1))
	s.offMask = uint32(uint64(1)<<s.offBits - 1)
	s.tagShift = 64 - (32 - s.offBits)
	out := make([]byte, 1, total)
	if uniq > 0 {
		s.table = make([]uint32, tableSize(uniq))
		s.mask = uint64(len(s.table) - 1)
	}
	for r := range recs {
		rr := &recs[r]
		if rr.ln == 0 {
			continue
		}
		d := blob[rr.off : rr.off+uint32(rr.ln)]
		id, ok := uint32(0), false
		if len(merged) > 0 {
			id, ok = merged[uint32(r)]
		}
		if !ok {
			id = sets.singleton(rr.cat)
		}
		off := uint32(len(out))
		out = append(out, rr.ln)
		out = binary.LittleEndian.AppendUint16(out, rr.src)
		if s.set4 {
			out = binary.LittleEndian.AppendUint32(out, id)
		} else {
			out = binary.LittleEndian.AppendUint16(out, uint16(id))
		}
		out = append(out, d...)
		h := maphash.Bytes(seed, d)
		e := uint32(h>>s.tagShift)<<s.offBits | off
		for i := h & s.mask; ; i = (i + 1) & s.mask {
			if s.table[i] == 0 {
				s.table[i] = e
				break
			}
		}
	}
	s.blob = out
	s.setData = slices.Clip(sets.data)
	s.setOff = slices.Clip(sets.off)
	return s
}
