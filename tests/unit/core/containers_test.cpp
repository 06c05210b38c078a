// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/containers.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <unordered_map>

namespace ftpwall {
namespace {

TEST(FlatSet, KeepsKeysInOrderWhateverOrderTheyCome) {
  FlatSet<int> s;
  for (int v : {5, 1, 9, 3, 5, 7, 1}) s.insert(v);
  EXPECT_EQ(s.size(), 5u);
  for (int v : {1, 3, 5, 7, 9}) EXPECT_TRUE(s.contains(v)) << v;
  for (int v : {0, 2, 4, 6, 8, 10}) EXPECT_FALSE(s.contains(v)) << v;
  EXPECT_TRUE(s.erase(5));
  EXPECT_FALSE(s.erase(5));
  EXPECT_FALSE(s.contains(5));
  EXPECT_TRUE(s.contains(7));
  EXPECT_FALSE(s.erase(4));
  EXPECT_EQ(s.size(), 4u);
  s.clear();
  EXPECT_TRUE(s.empty());
}

// NFQUEUE ids wrap at 2^32 and restart lower: a smaller key after larger ones still goes in its place.
TEST(FlatSet, AKeySmallerThanTheLastIsFoundAndErased) {
  FlatSet<std::uint32_t> s;
  s.insert(0xfffffffeu);
  s.insert(0xffffffffu);
  s.insert(0u);
  s.insert(1u);
  EXPECT_TRUE(s.contains(0u));
  EXPECT_TRUE(s.erase(0xffffffffu));
  EXPECT_TRUE(s.erase(0u));
  EXPECT_TRUE(s.contains(1u));
  EXPECT_TRUE(s.contains(0xfffffffeu));
  EXPECT_EQ(s.size(), 2u);
}

TEST(FlatMap, BehavesLikeAMap) {
  FlatMap<std::uint64_t, std::string> m;
  std::map<std::uint64_t, std::string> ref;
  const std::uint64_t keys[] = {3, 4, 9, 1, 4, 12, 2, 9};
  for (std::uint64_t k : keys) {
    m[k] += "x" + std::to_string(k);
    ref[k] += "x" + std::to_string(k);
  }
  ASSERT_EQ(m.size(), ref.size());
  auto r = ref.begin();
  for (auto& [k, v] : m) {  // in key order, like the std::map
    EXPECT_EQ(k, r->first);
    EXPECT_EQ(v, r->second);
    ++r;
  }
  EXPECT_EQ(m.find(5), m.end());
  auto it = m.find(4);
  ASSERT_NE(it, m.end());
  EXPECT_EQ(it->second, "x4x4");
  m.erase(it);
  EXPECT_EQ(m.find(4), m.end());
  EXPECT_NE(m.find(9), m.end());
  EXPECT_EQ(m.size(), ref.size() - 1);
}

TEST(NodeSpares, AnErasedNodeIsReusedAndHoldsNothingAlive) {
  std::unordered_map<int, std::shared_ptr<int>> m;
  NodeSpares<std::unordered_map<int, std::shared_ptr<int>>, 2> spares;
  auto held = std::make_shared<int>(7);
  spares.put(m, 1, held);
  EXPECT_EQ(held.use_count(), 2);
  spares.erase(m, m.find(1));
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(spares.kept(), 1u);
  EXPECT_EQ(held.use_count(), 1);  // the kept node's value was reset
  auto it = spares.put(m, 2, std::make_shared<int>(8));
  EXPECT_EQ(spares.kept(), 0u);
  EXPECT_EQ(it->first, 2);
  EXPECT_EQ(*it->second, 8);
  EXPECT_EQ(m.size(), 1u);
}

TEST(NodeSpares, PutOnAPresentKeyReplacesItsValue) {
  std::unordered_map<int, int> m;
  NodeSpares<std::unordered_map<int, int>> spares;
  spares.put(m, 1, 10);
  spares.put(m, 1, 11);
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.at(1), 11);
}

TEST(NodeSpares, KeepsAtMostItsCapacity) {
  std::map<int, int> m;
  NodeSpares<std::map<int, int>, 2> spares;
  for (int k = 0; k < 5; ++k) spares.put(m, k, k);
  while (!m.empty()) spares.erase(m, m.begin());
  EXPECT_EQ(spares.kept(), 2u);
  for (int k = 10; k < 13; ++k) spares.put(m, k, k * 2);
  EXPECT_EQ(spares.kept(), 0u);
  EXPECT_EQ(m.size(), 3u);
  EXPECT_EQ(m.at(12), 24);
  spares.erase(m, m.find(10));
  spares.clear();
  EXPECT_EQ(spares.kept(), 0u);
}

struct KeepCapacity {
  void operator()(std::vector<int>& v) const { v.clear(); }
};

TEST(NodeSpares, AResetKeepsWhatItsResetKeepsAndGetAddsAnEmptyValue) {
  std::unordered_map<int, std::vector<int>> m;
  NodeSpares<std::unordered_map<int, std::vector<int>>, 4, KeepCapacity> spares;
  auto it = spares.get(m, 1);
  EXPECT_TRUE(it->second.empty());
  it->second.assign(100, 7);
  const auto* storage = it->second.data();
  EXPECT_EQ(spares.get(m, 1)->second.size(), 100u);  // present: the same entry
  spares.erase(m, m.find(1));
  auto again = spares.get(m, 2);
  EXPECT_EQ(again->first, 2);
  EXPECT_TRUE(again->second.empty());
  EXPECT_GE(again->second.capacity(), 100u);
  EXPECT_EQ(again->second.data(), storage);  // the node and its buffer, reused
}

TEST(SmallBytes, HoldsShortStringsInItselfAndLongOnesOnTheHeap) {
  const std::string short_text = "203,0,113,1,195,80", long_text(100, 'x');
  SmallBytes<24> a, b;
  a.assign(short_text.begin(), short_text.end());
  EXPECT_EQ(a.size(), short_text.size());
  EXPECT_TRUE(std::equal(a.begin(), a.end(), short_text.begin()));
  const auto* inline_at = a.data();
  b = a;  // a copy, equal, in its own storage
  EXPECT_EQ(a, b);
  EXPECT_NE(b.data(), inline_at);
  b.assign(long_text.begin(), long_text.end());
  EXPECT_EQ(b.size(), 100u);
  EXPECT_NE(a, b);
  EXPECT_EQ(b[99], 'x');
  const auto* heap_at = b.data();
  SmallBytes<24> c = std::move(b);  // the heap buffer moves
  EXPECT_EQ(c.data(), heap_at);
  EXPECT_EQ(c.size(), 100u);
  EXPECT_TRUE(b.empty());
  SmallBytes<24> d = std::move(a);  // inline bytes are copied
  EXPECT_EQ(d.size(), short_text.size());
  EXPECT_TRUE(std::equal(d.begin(), d.end(), short_text.begin()));
  const std::span<const std::uint8_t> view = d;
  EXPECT_EQ(view.size(), short_text.size());
  c.assign(short_text.begin(), short_text.end());  // back to inline
  EXPECT_EQ(c, d);
  SmallBytes<24> e;
  EXPECT_TRUE(e.empty());
  EXPECT_EQ(std::span<const std::uint8_t>(e).size(), 0u);
}

TEST(Fifo, PopsInOrderAndReusesItsVector) {
  Fifo<std::shared_ptr<int>> q;
  auto held = std::make_shared<int>(1);
  q.push_back(std::shared_ptr<int>(held));
  for (int i = 2; i <= 4; ++i) q.push_back(std::make_shared<int>(i));
  EXPECT_EQ(q.size(), 4u);
  EXPECT_EQ(*q.front(), 1);
  q.pop_front();
  EXPECT_EQ(held.use_count(), 1);  // a popped entry holds nothing alive
  std::vector<int> rest;
  for (const auto& p : q) rest.push_back(*p);
  EXPECT_EQ(rest, (std::vector<int>{2, 3, 4}));
  while (!q.empty()) q.pop_front();
  EXPECT_EQ(q.size(), 0u);
  q.push_back(std::make_shared<int>(5));
  EXPECT_EQ(*q.front(), 5);
}

TEST(Fifo, AQueueThatNeverEmptiesStaysInOrder) {
  Fifo<int> q;
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 1000; ++round) {
    q.push_back(int{next_in++});
    q.push_back(int{next_in++});
    ASSERT_EQ(q.front(), next_out);
    q.pop_front();
    ++next_out;
  }
  EXPECT_EQ(q.size(), 1000u);
  while (!q.empty()) {
    ASSERT_EQ(q.front(), next_out++);
    q.pop_front();
  }
  EXPECT_EQ(next_out, next_in);
}

}  // namespace
}  // namespace ftpwall
