// SPDX-License-Identifier: MIT
#include "buf_writer.h"

#include <gtest/gtest.h>

namespace
{

TEST(BufWriter, AppendsUntilFullThenStaysFailed)
{
    char buf[8];
    ga::BufWriter w(buf);
    w.append("abc").append('d').append_uint(42);
    EXPECT_TRUE(w.ok());
    EXPECT_EQ(w.view(), "abcd42");
    w.append("xyz");
    EXPECT_FALSE(w.ok());
    w.append("");
    EXPECT_FALSE(w.ok());
}

TEST(BufWriter, IntegersWithSign)
{
    char buf[48];
    ga::BufWriter w(buf);
    w.append_int(-9223372036854775807LL - 1).append(' ').append_uint(18446744073709551615ULL);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w.view(), "-9223372036854775808 18446744073709551615");
}

TEST(BufWriter, UrlEncodesAllButUnreservedWithUppercaseHex)
{
    char buf[64];
    ga::BufWriter w(buf);
    w.append_url_encoded("a/b+c=~_.-$ \xff");
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w.view(), "a%2Fb%2Bc%3D~_.-%24%20%FF");
}

TEST(BufWriter, ExactFitIsOk)
{
    char buf[3];
    ga::BufWriter w(buf);
    w.append_url_encoded("/");
    EXPECT_TRUE(w.ok());
    EXPECT_EQ(w.view(), "%2F");
    w.clear();
    EXPECT_EQ(w.size(), 0U);
}

} // namespace
