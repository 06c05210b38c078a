// SPDX-License-Identifier: GPL-2.0-or-later
// Containers for the packet path without an allocation per element (issue 13: 41 malloc calls per
// announcement behind DNAT, most of them nodes of small sets and maps made and dropped with every
// opening). Pure: no I/O, no netfilter header.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <span>
#include <utility>
#include <vector>

namespace ftpwall {

// A set of a few keys as a sorted vector: keys that mostly come in increasing order (NFQUEUE packet
// ids, tokens) are appended; erase() is a binary search and a move of the few later keys.
template <class T>
class FlatSet {
 public:
  void insert(const T& v) {
    if (v_.empty() || v_.back() < v) {
      v_.push_back(v);
      return;
    }
    auto it = std::lower_bound(v_.begin(), v_.end(), v);
    if (it == v_.end() || *it != v) v_.insert(it, v);
  }
  // true when v was there
  bool erase(const T& v) {
    auto it = std::lower_bound(v_.begin(), v_.end(), v);
    if (it == v_.end() || *it != v) return false;
    v_.erase(it);
    return true;
  }
  bool contains(const T& v) const { return std::binary_search(v_.begin(), v_.end(), v); }
  std::size_t size() const { return v_.size(); }
  bool empty() const { return v_.empty(); }
  void clear() { v_.clear(); }

 private:
  std::vector<T> v_;
};

// A map of a few entries as a sorted vector of pairs, for keys that come in increasing order.
template <class K, class V>
class FlatMap {
 public:
  using value_type = std::pair<K, V>;
  using iterator = typename std::vector<value_type>::iterator;
  V& operator[](const K& k) {
    if (v_.empty() || v_.back().first < k) return v_.emplace_back(k, V{}).second;
    auto it = lower(k);
    if (it == v_.end() || it->first != k) it = v_.insert(it, value_type{k, V{}});
    return it->second;
  }
  iterator find(const K& k) {
    auto it = lower(k);
    return it != v_.end() && it->first == k ? it : v_.end();
  }
  iterator begin() { return v_.begin(); }
  iterator end() { return v_.end(); }
  void erase(iterator it) { v_.erase(it); }
  std::size_t size() const { return v_.size(); }
  bool empty() const { return v_.empty(); }

 private:
  iterator lower(const K& k) {
    return std::lower_bound(v_.begin(), v_.end(), k, [](const value_type& e, const K& x) { return e.first < x; });
  }
  std::vector<value_type> v_;
};

// How NodeSpares resets a kept node's value: by a new, empty one (the default), or by a type's own
// reset that keeps its buffers' capacity (a Reset with `void operator()(V&)`).
struct ResetToEmpty {
  template <class V>
  void operator()(V& v) const {
    v = V{};
  }
};

// The nodes of a node-based map (std::map, std::unordered_map) that erase() took out, kept for the
// next put(): an entry replaced by the next one (an opening by its successor) costs no free and no
// malloc. At most Cap nodes are kept (above the 64 openings one batch of packets may replace); a kept
// node's value is reset, so it holds nothing alive.
template <class Map, std::size_t Cap = 128, class Reset = ResetToEmpty>
class NodeSpares {
 public:
  using iterator = typename Map::iterator;
  void erase(Map& m, iterator it) {
    if (spares_.size() >= Cap) {
      m.erase(it);
      return;
    }
    auto n = m.extract(it);
    Reset{}(n.mapped());
    spares_.push_back(std::move(n));
  }
  // The entry of k, added with a reset value (a kept node's, or a new one) when there is none.
  template <class K>
  iterator get(Map& m, K&& k) {
    if (auto it = m.find(k); it != m.end()) return it;
    if (spares_.empty()) return m.emplace(std::forward<K>(k), typename Map::mapped_type{}).first;
    auto n = std::move(spares_.back());
    spares_.pop_back();
    n.key() = std::forward<K>(k);
    return m.insert(std::move(n)).position;
  }
  // m[k] = v, from a kept node when there is one.
  template <class K, class V>
  iterator put(Map& m, K&& k, V&& v) {
    auto it = get(m, std::forward<K>(k));
    it->second = std::forward<V>(v);
    return it;
  }
  void clear() { spares_.clear(); }
  std::size_t kept() const { return spares_.size(); }

 private:
  std::vector<typename Map::node_type> spares_;
};

// A byte string that holds up to N bytes in itself and allocates only beyond (a correction's old
// and new bytes: "10,0,0,10" -> "203,0,113,1" and the like, bounded by limits::max_correction_bytes).
template <std::size_t N>
class SmallBytes {
 public:
  SmallBytes() = default;
  SmallBytes(const SmallBytes& o) { assign(o.begin(), o.end()); }
  SmallBytes(SmallBytes&& o) noexcept { take(o); }
  SmallBytes& operator=(const SmallBytes& o) {
    if (this != &o) assign(o.begin(), o.end());
    return *this;
  }
  SmallBytes& operator=(SmallBytes&& o) noexcept {
    if (this != &o) take(o);
    return *this;
  }
  ~SmallBytes() = default;

  // [first, last) must not lie inside this string.
  template <class It>
  void assign(It first, It last) {
    const auto n = static_cast<std::size_t>(std::distance(first, last));
    if (n > N) {
      if (!heap_ || n > heap_size_) {
        heap_ = std::make_unique_for_overwrite<std::uint8_t[]>(n);
        heap_size_ = n;
      }
    } else {
      heap_.reset();
      heap_size_ = 0;
    }
    size_ = n;
    std::copy(first, last, data());
  }
  std::uint8_t* data() { return heap_ ? heap_.get() : inline_.data(); }
  const std::uint8_t* data() const { return heap_ ? heap_.get() : inline_.data(); }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const std::uint8_t* begin() const { return data(); }
  const std::uint8_t* end() const { return data() + size_; }
  std::uint8_t operator[](std::size_t i) const { return data()[i]; }
  operator std::span<const std::uint8_t>() const { return {data(), size_}; }  // NOLINT: a view, as of a vector
  friend bool operator==(const SmallBytes& a, const SmallBytes& b) { return std::ranges::equal(a, b); }

 private:
  void take(SmallBytes& o) {
    size_ = o.size_;
    heap_size_ = o.heap_size_;
    if (o.heap_) heap_ = std::move(o.heap_);
    else {
      heap_.reset();
      std::copy_n(o.inline_.data(), o.size_, inline_.data());
    }
    o.size_ = o.heap_size_ = 0;
  }
  std::size_t size_ = 0;
  std::size_t heap_size_ = 0;
  std::array<std::uint8_t, N> inline_{};
  std::unique_ptr<std::uint8_t[]> heap_;
};

// A first-in first-out queue in one vector: popped entries are skipped, and the vector is emptied
// (its capacity kept) when the last is popped; a std::deque of large entries allocates a block
// every entry or two.
template <class T>
class Fifo {
 public:
  void push_back(T&& v) { v_.push_back(std::move(v)); }
  T& front() { return v_[head_]; }
  const T& front() const { return v_[head_]; }
  void pop_front() {
    v_[head_] = T{};  // holds nothing alive
    if (++head_ == v_.size()) clear();
    else if (head_ >= 64 && head_ * 2 >= v_.size()) {  // a queue that never empties: compacted now and then
      v_.erase(v_.begin(), v_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  bool empty() const { return head_ == v_.size(); }
  std::size_t size() const { return v_.size() - head_; }
  auto begin() { return v_.begin() + static_cast<std::ptrdiff_t>(head_); }
  auto end() { return v_.end(); }
  auto begin() const { return v_.begin() + static_cast<std::ptrdiff_t>(head_); }
  auto end() const { return v_.end(); }
  void clear() {
    v_.clear();
    head_ = 0;
  }

 private:
  std::vector<T> v_;
  std::size_t head_ = 0;
};

}  // namespace ftpwall
