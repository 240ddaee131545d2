/**
 * Common passwords that meet the 12-character minimum, lower-cased, plus the short base words
 * that people pad to 12 characters with digits or symbols ("password1234!", "qwerty123456").
 * Sources: the well-known breach top lists (RockYou, SecLists' 10k/100k most common), filtered
 * to what our length rule still lets through. Checked after lower-casing and, for the base
 * words, after stripping trailing digits and symbols.
 */
export const COMMON_PASSWORDS: ReadonlySet<string> = new Set([
  "123456789012", "1234567890123", "12345678901234", "123456789123", "123123123123", "111111111111",
  "000000000000", "121212121212", "987654321098", "098765432109", "qwertyuiop12", "qwertyuiop123",
  "qwertyuiopas", "qwertyuiopasdf", "asdfghjkl123", "asdfghjkl;'", "zxcvbnm12345", "1q2w3e4r5t6y",
  "1q2w3e4r5t6y7u", "q1w2e3r4t5y6", "1qaz2wsx3edc", "1qaz2wsx3edc4rfv", "qazwsxedcrfv", "zaq12wsxcde3",
  "password1234", "password12345", "password123456", "password123!", "passw0rd1234", "p@ssw0rd1234",
  "p@ssword1234", "iloveyou1234", "iloveyou123456", "letmein12345", "welcome12345", "welcome123456",
  "administrator", "administrator1", "admin1234567", "changeme1234", "trustno11234", "sunshine1234",
  "princess1234", "football1234", "baseball1234", "superman1234", "starwars1234", "dragon123456",
  "monkey123456", "master123456", "shadow123456", "michael12345", "jennifer1234", "charlie12345",
  "computer1234", "whatever1234", "qwerty123456", "qwerty1234567", "abc123456789", "abcdefghijkl",
  "abcdefghijklm", "abcdefgh1234", "aaaaaaaaaaaa", "abcabcabcabc", "passwordpassword", "mypassword12",
  "mypassword123", "thisismypassword", "correcthorsebatterystaple", "letmeinletmein", "iloveyouiloveyou",
  "lovelovelove", "1234qwerasdf", "1234qwerasdfzxcv", "qwer1234asdf", "asdf1234qwer", "a1b2c3d4e5f6",
  "plantlover123", "plantlover1234", "gardening123", "gardening1234", "gardener1234", "monstera1234",
  "sunflower123", "sunflower1234", "greenthumb12", "greenthumb123", "internet1234", "samsung12345",
  "liverpool123", "liverpool1234", "chelsea12345", "arsenal12345", "manchester12", "blink1821821",
  "1234567891011", "123456654321", "147258369123", "159357123456", "741852963123", "112233445566",
  "11223344556677", "qweasdzxc123", "qweasdzxc1234", "zxcvbnmasdfg", "mnbvcxzlkjhg", "poiuytrewq12",
]);

/** Words that stay weak however many digits or symbols are appended to reach the minimum. */
export const COMMON_BASE_WORDS: ReadonlySet<string> = new Set([
  "password", "passw0rd", "p@ssw0rd", "p@ssword", "qwerty", "qwertyuiop", "letmein", "welcome", "iloveyou",
  "admin", "administrator", "changeme", "monkey", "dragon", "football", "baseball", "sunshine", "princess",
  "superman", "starwars", "master", "shadow", "trustno1", "abc", "abcdef", "asdfgh", "asdfghjkl", "zxcvbnm",
  "plantcommunity", "plants", "garden", "gardening", "secret", "login", "hello", "freedom", "whatever",
]);
