<?php
/**
 * The proof request: its answer (an HMAC of host and nonce under the sidecar
 * token), and the refusals an attacker meets (another host, another method,
 * a malformed nonce, no token): 404, nothing else.
 *
 * @package Closte_Operator
 */

final class ProofTest extends PHPUnit\Framework\TestCase {

	const TOKEN = 'proof-test-token-0123456789abcdef';
	const NONCE = 'n0nce-0123456789abcdef';

	private static function respond( string $uri, string $method = 'GET', string $token = self::TOKEN, bool $serves = true ): ?array {
		return Closte_Operator_Proof::respond( $method, $uri, 'shop.example.com', $token, $serves );
	}

	public function test_a_proof_request_on_a_served_host_answers_the_hmac(): void {
		$answer = self::respond( '/.well-known/closte-operator/' . self::NONCE );
		$mac    = hash_hmac( 'sha256', "closte-operator-proof-v1\nshop.example.com\n" . self::NONCE, self::TOKEN );
		$this->assertSame( array( 200, "closte-operator-proof-v1 $mac\n" ), $answer );
		// the vector src/probe/proof.rs checks too: PHP and the controller agree
		$this->assertSame( 'f97c943e8cd78f3479a79f7d78ac99099054594a94f00a82fe0b99826ef4fffa', $mac );
		$this->assertSame( "closte-operator-proof-v1 $mac", Closte_Operator_Proof::answer( self::TOKEN, 'SHOP.example.com', self::NONCE ) );
	}

	public function test_another_token_or_nonce_or_host_answers_another_proof(): void {
		$ours = Closte_Operator_Proof::answer( self::TOKEN, 'shop.example.com', self::NONCE );
		$this->assertNotSame( $ours, Closte_Operator_Proof::answer( 'another-namespace-token', 'shop.example.com', self::NONCE ) );
		$this->assertNotSame( $ours, Closte_Operator_Proof::answer( self::TOKEN, 'shop.example.org', self::NONCE ) );
		$this->assertNotSame( $ours, Closte_Operator_Proof::answer( self::TOKEN, 'shop.example.com', self::NONCE . 'x' ) );
	}

	public function test_every_other_path_goes_on_to_wordpress(): void {
		foreach ( array( '/', '/wp-admin/', '/.well-known/acme-challenge/x', '/?/.well-known/closte-operator/' . self::NONCE ) as $uri ) {
			$this->assertNull( self::respond( $uri ), $uri );
		}
	}

	public function test_refusals_say_404_and_nothing_else(): void {
		$not_found = array( 404, "Not Found\n" );
		$proof     = '/.well-known/closte-operator/';
		$this->assertSame( $not_found, self::respond( $proof . self::NONCE, 'GET', self::TOKEN, false ), 'a host this network does not serve' );
		$this->assertSame( $not_found, self::respond( $proof . self::NONCE, 'POST' ), 'another method' );
		$this->assertSame( $not_found, self::respond( $proof . self::NONCE, 'GET', '' ), 'no token to sign with' );
		foreach ( array( '', 'short', str_repeat( 'a', 129 ), self::NONCE . '/x', self::NONCE . '%00', '../../wp-config.php', self::NONCE . '.php' ) as $nonce ) {
			$this->assertSame( $not_found, self::respond( $proof . $nonce ), "nonce '$nonce'" );
		}
		// the query string is not part of the nonce
		$this->assertSame( 200, self::respond( $proof . self::NONCE . '?x=1' )[0] );
	}
}
