// RouteCache must answer exactly what RouteOf() says for the whole target,
// whichever memo answers: the last target, a table slot, or neither.
#include "aggregators/red/route_cache.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "aggregators/red/route_normalizer.h"

namespace redmap {
namespace {

RoutePatterns Patterns(const std::vector<std::string>& p) {
  auto r = RoutePatterns::Create(p);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : RoutePatterns();
}

const std::vector<std::string>& Targets() {
  static const std::vector<std::string> t = {
      "/users/1?x=1", "/users/2", "/users/1#f", "/users/1?x=2", "*", "*?x", "/static/a/b.css",
      "/static", "/static/", "http://h/users/7?q", "/users/1", "/" + std::string(300, 'a'),
      "/" + std::string(300, 'a') + "?q", "/a%00b", "/orders/42/items", "", "/users/1",
      "/users/1?x=1"};
  return t;
}

TEST(RouteCacheTest, AnswersWhatRouteOfSaysForTheWholeTarget) {
  for (const std::vector<std::string>& p :
       {std::vector<std::string>{}, std::vector<std::string>{"/static/**", "/orders/{id}/items"}}) {
    const RoutePatterns patterns = Patterns(p);
    RouteCache cache(patterns);
    // Twice over: the second pass is answered by the table where it can be.
    for (int pass = 0; pass < 2; ++pass) {
      for (const std::string& t : Targets()) {
        std::string want;
        RouteOf(patterns.empty() ? nullptr : &patterns, t, &want);
        EXPECT_EQ(cache.Route(t), want) << "target " << t << " patterns " << p.size();
        // Asked again (the next sink, same span): the last-target memo.
        EXPECT_EQ(cache.Route(t), want) << "target " << t;
      }
    }
  }
}

TEST(RouteCacheTest, PatternsWinOverTheHeuristics) {
  RouteCache cache(Patterns({"/static/**"}));
  EXPECT_EQ(cache.Route("/static/css/site.css?v=3"), "/static/**");
  EXPECT_EQ(cache.Route("/users/42"), "/users/{id}");
  RouteCache plain;
  EXPECT_EQ(plain.Route("/static/css/site.css?v=3"), "/static/css/site.css");
}

TEST(RouteCacheTest, CountsWhichMemoAnswered) {
  RouteCache cache;
  cache.Route("/users/1?a");  // miss
  cache.Route("/users/1?a");  // same target: last
  cache.Route("/users/1?b");  // same path: slot
  cache.Route("/users/2");    // new path: miss
  cache.Route("/users/1?a");  // slot again
  cache.Route("/" + std::string(300, 'x'));  // too long for a slot: miss
  cache.Route("/" + std::string(300, 'x'));  // last
  EXPECT_EQ(cache.stats().misses, 3u);
  EXPECT_EQ(cache.stats().last_hits, 2u);
  EXPECT_EQ(cache.stats().slot_hits, 2u);
}

// Two paths in one slot evict each other; the answer stays right.
TEST(RouteCacheTest, CollidingPathsEvictEachOther) {
  RouteCache cache;
  std::vector<std::string> paths;
  for (int i = 0; i < 3 * static_cast<int>(RouteCache::kSlots); ++i) {
    paths.push_back("/p" + std::to_string(i) + "/" + std::to_string(i));
  }
  for (int pass = 0; pass < 2; ++pass) {
    for (const std::string& p : paths) {
      ASSERT_EQ(cache.Route(p), NormalizeRoute(p)) << p;
    }
  }
  // More paths than slots: the second pass cannot have hit for all of them.
  EXPECT_GT(cache.stats().misses, paths.size());
}

}  // namespace
}  // namespace redmap
