// Assertions for Result<T> that keep tests short and their failures readable.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "support/error.h"

#define EXPECT_OK(expr)                                                                              \
    do {                                                                                             \
        const auto& bw_result_ = (expr);                                                             \
        EXPECT_TRUE(bw_result_.has_value()) << #expr << " failed: " << bw_result_.error().message(); \
    } while (0)

#define ASSERT_OK(expr)                                                                              \
    do {                                                                                             \
        const auto& bw_result_ = (expr);                                                             \
        ASSERT_TRUE(bw_result_.has_value()) << #expr << " failed: " << bw_result_.error().message(); \
    } while (0)

#define EXPECT_ERRNO(expr, expected_errno)                                                        \
    do {                                                                                          \
        const auto& bw_result_ = (expr);                                                          \
        ASSERT_FALSE(bw_result_.has_value()) << #expr << " unexpectedly succeeded";               \
        EXPECT_EQ(bw_result_.error().errnum(), (expected_errno)) << bw_result_.error().message(); \
    } while (0)

// `text` (a message, a rendered report) must mention `needle`.
#define EXPECT_MENTIONS(text, needle) EXPECT_NE(std::string(text).find(needle), std::string::npos) << "text: " << (text)

// The error message (context + strerror) must mention `needle`.
#define EXPECT_ERROR_MENTIONS(expr, needle)                                         \
    do {                                                                            \
        const auto& bw_result_ = (expr);                                            \
        ASSERT_FALSE(bw_result_.has_value()) << #expr << " unexpectedly succeeded"; \
        EXPECT_NE(bw_result_.error().message().find(needle), std::string::npos)     \
            << "message: " << bw_result_.error().message();                         \
    } while (0)
