//! The content index's tantivy tokenizer: `kuroko_content::tokens` (NFKC, lower case, CJK
//! bigrams, Latin words), the same function the query side and the snippets use.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Name the schema gives the tokenizer.
pub const CONTENT_TOKENIZER: &str = "kuroko_content";

#[derive(Clone, Default)]
pub struct ContentTokenizer;

pub struct ContentTokenStream {
    tokens: Vec<Token>,
    next: usize,
}

impl Tokenizer for ContentTokenizer {
    type TokenStream<'a> = ContentTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> ContentTokenStream {
        let norm = kuroko_content::tokens::normalize(text);
        let mut tokens = Vec::new();
        kuroko_content::tokens::tokenize(&norm, |t| {
            // Offsets are those of the normalized text (tantivy's own snippets are not used).
            tokens.push(Token {
                offset_from: t.from,
                offset_to: t.to,
                position: t.position,
                text: t.text,
                position_length: 1,
            })
        });
        ContentTokenStream { tokens, next: 0 }
    }
}

impl TokenStream for ContentTokenStream {
    fn advance(&mut self) -> bool {
        if self.next < self.tokens.len() {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &Token {
        &self.tokens[self
            .next
            .saturating_sub(1)
            .min(self.tokens.len().saturating_sub(1))]
    }

    fn token_mut(&mut self) -> &mut Token {
        let i = self
            .next
            .saturating_sub(1)
            .min(self.tokens.len().saturating_sub(1));
        &mut self.tokens[i]
    }
}
