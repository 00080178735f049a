// Anchor so redmap_testlib always has a translation unit.
namespace redmap::testing {
int testlib_anchor = 0;
}
