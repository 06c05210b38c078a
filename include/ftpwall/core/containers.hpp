// SPDX-License-Identifier: GPL-2.0-or-later
// Containers for the packet path without an allocation per element (issue 13: 41 malloc calls per
// announcement behind DNAT, most of them nodes of small sets and maps made and dropped with every
// opening). Pure: no I/O, no netfilter header.
#pragma once
#include <algorithm>
#include <cstddef>
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

// The nodes of a node-based map (std::map, std::unordered_map) that erase() took out, kept for the
// next put(): an entry replaced by the next one (an opening by its successor) costs no free and no
// malloc. At most Cap nodes are kept; a kept node's value is reset, so it holds nothing alive.
template <class Map, std::size_t Cap = 64>
class NodeSpares {
 public:
  using iterator = typename Map::iterator;
  void erase(Map& m, iterator it) {
    if (spares_.size() >= Cap) {
      m.erase(it);
      return;
    }
    auto n = m.extract(it);
    n.mapped() = typename Map::mapped_type{};
    spares_.push_back(std::move(n));
  }
  // m[k] = v, from a kept node when there is one.
  template <class K, class V>
  iterator put(Map& m, K&& k, V&& v) {
    if (auto it = m.find(k); it != m.end()) {
      it->second = std::forward<V>(v);
      return it;
    }
    if (spares_.empty()) return m.emplace(std::forward<K>(k), std::forward<V>(v)).first;
    auto n = std::move(spares_.back());
    spares_.pop_back();
    n.key() = std::forward<K>(k);
    n.mapped() = std::forward<V>(v);
    return m.insert(std::move(n)).position;
  }
  void clear() { spares_.clear(); }
  std::size_t kept() const { return spares_.size(); }

 private:
  std::vector<typename Map::node_type> spares_;
};

}  // namespace ftpwall
